"""tawasol: unlimited international calling plans on a Kamailio SIP edge."""

__version__ = "0.1.0"
