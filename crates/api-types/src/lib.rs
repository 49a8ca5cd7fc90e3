//! Request and response types of the HTTP APIs with their OpenAPI schemas.
