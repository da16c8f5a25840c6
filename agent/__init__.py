"""The shopper agent: action schema, prompts, policies, sessions, traces, replay, reports and the CLI."""
