"""Raw text completion with every parameter the backend takes, a token view and presets."""
