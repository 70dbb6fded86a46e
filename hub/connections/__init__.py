"""Connections to outside systems (upstream MISP, partners' MISPs, TAXII servers) and the
durable jobs that pull from and push to them."""
