from vidgpen.cli import main

raise SystemExit(main())
