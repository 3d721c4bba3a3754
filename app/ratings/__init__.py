"""Ratings (好差评) of finished tickets and the follow-up of bad ones."""
