from muxlang.cli import main

main()
