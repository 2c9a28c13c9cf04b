"""One fit end to end (plan, FreSh, training, outcome), and fitting many signals."""
