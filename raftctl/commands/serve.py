"""placeholder"""
HELP = "serve"
EPILOG = ""
def command() -> None:
    """x"""
