"""Channel and opinion results: attribution to institutions and discovery of unregistered sites."""
