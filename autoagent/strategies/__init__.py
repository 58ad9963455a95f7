"""One small interface per decision the loop makes: keep or discard (gate), when to stop (budget)."""
