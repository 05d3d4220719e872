"""The call script: what happens on an answered call, step by step (FastAGI route `debt-call`)."""
