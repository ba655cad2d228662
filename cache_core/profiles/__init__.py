"""Block profiles: the profiler's recorder, the profile's schema and files, the threshold curves
read from them, the heatmap."""
