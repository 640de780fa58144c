//! Integration tests: real servers on port 0, real WebSocket clients, a real redis-server.

mod bad_input;
mod common;
mod flash_sale;
mod liveness;
mod rooms;
mod slow_consumer;
mod startup;
mod web;
