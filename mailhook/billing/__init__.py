"""Credits and Stripe billing (see the admin API issue)."""
