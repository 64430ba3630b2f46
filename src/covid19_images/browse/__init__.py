"""The dataset browser (``covid19-images browse``): live pages over a root and a static catalog."""
