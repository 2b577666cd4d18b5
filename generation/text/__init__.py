"""Pure-Python text rules, one implementation of each, no Django and no models:

- ``sentences``: where sentences end, splitting text into sentences, dropping an unfinished one;
- ``repetition``: words, repeated word n-grams, loop cutting, repeated-sentence dropping;
- ``placeholders``: ``{{Placeholder}}`` tokens, filling them, turning masks and made-up values into them;
- ``masking``: the patterns personal data is recognised by (``generation.privacy`` applies them);
- ``copycheck``: what product copy may claim, given the product's attributes;
- ``summarycheck``: whether each sentence of an alert summary is supported by the items it cites.
"""
