"""ReDSM5 builder (posts x DSM-5 depression criteria)."""
