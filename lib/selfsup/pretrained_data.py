"""Small labelled English sets written for the course, for the real pre-trained MiniLM (see `selfsup.pretrained`).

Two uses: "apple" in two senses (the fruit, the company) to show contextual embeddings, and a tiny
sentiment set to fine-tune on. Every sentence was written for this course; none comes from a corpus.
"""

from __future__ import annotations

# "apple" the fruit: eating, growing, cooking, colour and taste.
APPLE_FRUIT: tuple[str, ...] = (
    "She cut the apple into thin slices for the children.",
    "A green apple is more sour than a red one.",
    "He picked a ripe apple from the tree in the garden.",
    "My grandmother bakes an apple pie every Sunday.",
    "The apple was so juicy that it dripped down my chin.",
    "Add a grated apple and some cinnamon to the porridge.",
    "There is a bruised apple at the bottom of the fruit bowl.",
    "The orchard grows apple trees and pear trees.",
    "I packed an apple and a banana for lunch.",
    "The horse happily ate the apple from her hand.",
    "Peel the apple before you cook it with sugar.",
    "A worm had eaten a hole through the apple.",
)

# "Apple" the company: products, shares, stores, software.
APPLE_COMPANY: tuple[str, ...] = (
    "Apple announced a new iPhone at its event in California.",
    "Shares of Apple rose after the quarterly earnings report.",
    "She works as a software engineer at Apple in Cupertino.",
    "Apple released an update for the operating system on its laptops.",
    "The lawsuit claims that Apple broke competition rules.",
    "Apple opened a large store in the city centre last year.",
    "Investors expect Apple to sell more watches this quarter.",
    "The app was removed from the Apple store by the company.",
    "Apple and Microsoft compete for customers in the computer market.",
    "He bought an Apple laptop for his design work.",
    "Apple hired hundreds of engineers to build its own chips.",
    "The chief executive of Apple spoke about privacy at the conference.",
)

# A tiny sentiment set: (text, label) with label 1 = positive, 0 = negative. Short reviews of everyday things.
SENTIMENT: tuple[tuple[str, int], ...] = (
    ("The film was wonderful and the actors were brilliant.", 1),
    ("I loved this restaurant, the food was delicious.", 1),
    ("What a great book, I could not put it down.", 1),
    ("The hotel staff were friendly and very helpful.", 1),
    ("This phone is fast and the battery lasts for days.", 1),
    ("A beautiful song that always makes me happy.", 1),
    ("The concert was fantastic from start to finish.", 1),
    ("Excellent service and a lovely view of the sea.", 1),
    ("The new park is clean, quiet and pleasant.", 1),
    ("Our teacher was kind and explained everything clearly.", 1),
    ("The coffee here is superb and the prices are fair.", 1),
    ("I am delighted with this bicycle, it rides perfectly.", 1),
    ("The film was boring and far too long.", 0),
    ("I hated the food, it was cold and tasteless.", 0),
    ("A dreadful book with a silly plot.", 0),
    ("The hotel room was dirty and the staff were rude.", 0),
    ("This phone is slow and the screen cracked in a week.", 0),
    ("An awful song that gives me a headache.", 0),
    ("The concert was a disappointing mess.", 0),
    ("Terrible service and the bill was wrong.", 0),
    ("The park is noisy, crowded and full of litter.", 0),
    ("The lecture was confusing and the teacher was impatient.", 0),
    ("The coffee tasted burnt and cost far too much.", 0),
    ("I regret buying this bicycle, it broke on the first day.", 0),
)

SENTIMENT_LABELS: tuple[str, ...] = ("negative", "positive")
