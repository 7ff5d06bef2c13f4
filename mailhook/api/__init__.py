"""The Litestar API: controllers, auth, schemas and the one exception-to-HTTP map."""
