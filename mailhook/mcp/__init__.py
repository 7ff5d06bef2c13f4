"""The agent primitives as MCP tools (official ``mcp`` SDK): over stdio and streamable HTTP."""
