"""Payment providers behind `tawasol.services.payments.ports.PaymentProvider`: each
translates the platform's requests into its provider's API and its answers and events back."""
