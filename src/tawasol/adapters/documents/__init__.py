"""Invoices and credit notes rendered for people: HTML and PDF (WeasyPrint)."""
