//! Parser (STUB).
