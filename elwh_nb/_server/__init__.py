"""The server side: the receiver, the Jupyter route and extension, URLs, tunnels and the sender."""
