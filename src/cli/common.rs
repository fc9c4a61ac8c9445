//! Flags shared by several subcommands.
