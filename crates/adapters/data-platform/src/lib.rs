//! HTTP client for the external data platform, behind `order::events::DataPlatform`.
