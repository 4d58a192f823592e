"""The seed rubric: the four criteria of the Step-Audio-R1.5 recipe (DESIGN.md)."""

SEED_INSTRUCTIONS = (
    "Listen to the whole conversation, then to every reply. Score each reply on each criterion, "
    "then rank the replies from best to worst (ties allowed). Judge the spoken reply as heard; "
    "the reasoning trace, when shown, is context only."
)

SEED_CRITERIA = [
    {
        "key": "correctness",
        "label": "Correctness",
        "guidance": "Is what the reply says true, relevant and responsive to the last user turn?",
        "scale_min": 1,
        "scale_max": 5,
        "anchors": {
            "1": "Wrong, irrelevant or ignores the question",
            "2": "Mostly wrong or misses the point",
            "3": "Partly right; notable gaps or errors",
            "4": "Right with minor slips",
            "5": "Fully right and to the point",
        },
        "weight": 1.0,
    },
    {
        "key": "fluency",
        "label": "Fluency and prosodic naturalness",
        "guidance": "Does it sound like natural speech: rhythm, stress, intonation, pauses, no glitches?",
        "scale_min": 1,
        "scale_max": 5,
        "anchors": {
            "1": "Robotic or broken; hard to follow",
            "2": "Mechanical; frequent odd pauses or stress",
            "3": "Understandable but clearly synthetic",
            "4": "Mostly natural; small prosody slips",
            "5": "Sounds like a fluent person talking",
        },
        "weight": 1.0,
    },
    {
        "key": "emotional_resonance",
        "label": "Emotional resonance",
        "guidance": "Does the reply pick up the speaker's mood and answer with fitting warmth and tone?",
        "scale_min": 1,
        "scale_max": 5,
        "anchors": {
            "1": "Tone-deaf or inappropriate",
            "2": "Flat; ignores the speaker's feelings",
            "3": "Neutral; acknowledges mood only in words",
            "4": "Warm and fitting",
            "5": "Genuinely attuned; feels like being heard",
        },
        "weight": 1.0,
    },
    {
        "key": "persona_consistency",
        "label": "Persona consistency",
        "guidance": "Does the reply stay in the assistant's established role, voice and facts across turns?",
        "scale_min": 1,
        "scale_max": 5,
        "anchors": {
            "1": "Breaks character or contradicts itself",
            "2": "Noticeable drift from the persona",
            "3": "Mostly in role; some drift",
            "4": "In role with tiny slips",
            "5": "Perfectly consistent persona",
        },
        "weight": 1.0,
    },
]
