"""One parser per docker syntax (``-p``, ``-v``, ``-e``, image reference, restart).

Each parser accepts the short string form users paste from ``docker run`` or
docker-compose, plus the structured form it dumps to, so a validated document
round-trips through JSON between controller and agent unchanged.
"""
