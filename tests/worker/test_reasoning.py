from worker.reasoning import split_reasoning


def test_think_block_is_separated_from_the_reply():
    assert split_reasoning("<think>user sounds sad</think>I'm sorry to hear that.") == ("user sounds sad", "I'm sorry to hear that.")


def test_text_without_think_is_all_reply():
    assert split_reasoning("Sure, here it is.") == ("", "Sure, here it is.")


def test_unclosed_think_makes_the_rest_reasoning():
    assert split_reasoning("Okay. <think>maybe I should") == ("maybe I should", "Okay.")


def test_lone_closing_tag_ends_reasoning_opened_by_the_template():
    assert split_reasoning("plan the answer</think>\nHello!") == ("plan the answer", "Hello!")


def test_server_reasoning_comes_before_inline_reasoning():
    assert split_reasoning("<think>b</think>reply", "a") == ("a\n\nb", "reply")


def test_only_reasoning_leaves_an_empty_reply():
    assert split_reasoning("<think>all thought</think>  ") == ("all thought", "")
