"""trialctl cli."""
