//! Load generator driving publishers, players, WebSocket users and buyers.
