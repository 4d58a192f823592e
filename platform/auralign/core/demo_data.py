"""The demo dialogue set: short multi-turn spoken conversations where tone matters as much as facts."""

DEMO_DIALOGUES = [
    {
        "id": "exam-nerves",
        "metadata": {"topic": "stress", "mood": "anxious"},
        "turns": [
            ("user", "Hi. I have my driving test tomorrow morning and I can't stop shaking."),
            ("assistant", "That sounds really stressful. Is it your first attempt?"),
            ("user", "Yes, and everyone in my family passed the first time. What if I fail?"),
        ],
    },
    {
        "id": "tides",
        "metadata": {"topic": "science", "mood": "curious"},
        "turns": [
            ("user", "My daughter asked me why the sea goes in and out at the beach."),
            ("assistant", "Great question! That's the tide. Would you like a simple way to explain it?"),
            ("user", "Yes please, she's six, so keep it really simple."),
        ],
    },
    {
        "id": "lost-cat",
        "metadata": {"topic": "loss", "mood": "sad"},
        "turns": [
            ("user", "Our cat didn't come home last night. It's been almost a day now."),
            ("assistant", "I'm so sorry. That must be worrying. Has she stayed out this long before?"),
            ("user", "Never. I don't know what to do first."),
        ],
    },
    {
        "id": "promotion",
        "metadata": {"topic": "work", "mood": "excited"},
        "turns": [
            ("user", "Guess what? I just got promoted to team lead!"),
            ("assistant", "Congratulations! That's wonderful news. How are you feeling?"),
            ("user", "Excited, but I've never managed anyone. Any quick advice for my first week?"),
        ],
    },
    {
        "id": "recipe",
        "metadata": {"topic": "cooking", "mood": "neutral"},
        "turns": [
            ("user", "I have eggs, spinach and some cheese. What can I make for dinner?"),
            ("assistant", "You could make a lovely omelette or a quick frittata. Do you have an oven?"),
            ("user", "No oven, just a stove. Which one should I do?"),
        ],
    },
    {
        "id": "apology",
        "metadata": {"topic": "relationships", "mood": "regretful"},
        "turns": [
            ("user", "I snapped at my best friend today over something silly."),
            ("assistant", "It happens to all of us. Do you want to make things right with her?"),
            ("user", "I do. How should I start the conversation?"),
        ],
    },
]
