from posestream.cli import main

raise SystemExit(main())
