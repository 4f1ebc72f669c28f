from posestream.tracking.stability import id_stability

A, B = [0, 0, 10, 20], [50, 0, 60, 20]


def test_stable_ids_have_no_switch():
    frames = [[(1, A), (2, B)]] * 5
    s = id_stability(frames)
    assert (s.id_switches, s.births_after_first_frame, s.distinct_ids, s.longest_track_frames) == (0, 0, 2, 5)


def test_a_label_jump_at_the_same_place_is_a_switch_and_a_birth():
    frames = [[(1, A), (2, B)], [(1, A), (2, B)], [(3, A), (2, B)], [(3, A), (2, B)]]
    s = id_stability(frames)
    assert s.id_switches == 1 and s.births_after_first_frame == 1 and s.distinct_ids == 3


def test_two_ids_swapping_boxes_count_two_switches():
    s = id_stability([[(1, A), (2, B)], [(2, A), (1, B)]])
    assert s.id_switches == 2 and s.births_after_first_frame == 0


def test_untracked_and_empty_frames():
    s = id_stability([[(-1, A)], [], [(4, B)]])
    assert s.distinct_ids == 1 and s.births_after_first_frame == 1 and s.max_people_per_frame == 1
