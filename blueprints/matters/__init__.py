"""The matter catalogue API."""
