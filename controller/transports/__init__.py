"""How the controller reaches a host's agent: ``local`` now, ``ssh`` next."""
