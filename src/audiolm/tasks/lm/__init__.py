"""The audio LM family: next-token prediction over codec tokens; unconditional generation and continuation."""
