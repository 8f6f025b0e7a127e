//! Test harness shared by the end-to-end tests: private redis-server and moto server.
