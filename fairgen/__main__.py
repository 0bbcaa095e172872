from fairgen.cli import main

raise SystemExit(main())
