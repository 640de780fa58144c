//! WebSocket business server: rooms, chat, gifts, likes and flash sales.
