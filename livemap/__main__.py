from livemap.cli import main

main()
