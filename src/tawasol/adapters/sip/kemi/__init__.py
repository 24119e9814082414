"""The routing script Kamailio runs (app_python3, KEMI): `tawasol_edge.py` and its helpers.

These modules run inside Kamailio under Debian's system Python: standard library only, and no
import of the rest of tawasol. `edge_rules` (pure rules) and `edge_brain` (decision client,
event spool) are importable and tested from the project's virtualenv too; `tawasol_edge`,
`edge_auth`, `edge_dialog` and `edge_settings` need Kamailio's `KSR` module.
"""
