"""CLI commands of single models; every module here is imported by ``factorseq.cli``."""
