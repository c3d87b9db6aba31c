"""The THINGS-EEG2 and THINGS-MEG files: their layout and paths, loaders, downloads, sensors, the feature cache."""
