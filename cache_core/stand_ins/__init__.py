"""What stands in for skipped work: residual predictors (reuse, Taylor forecasts), the forecast
guard's first-block probe, the whole model's output. Torch only."""
