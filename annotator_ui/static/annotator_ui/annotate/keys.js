// Keyboard shortcuts of the task page (the help overlay lists the same table). Keys act on the
// page unless the annotator is typing in a text field; Enter and Space keep their usual meaning
// on a focused button, link, checkbox or menu.

const TYPING = new Set(["TEXTAREA", "SELECT"]);
const TEXT_INPUTS = new Set(["text", "search", "email", "password", "number", "url"]);
const ACTIVATABLE = "button, a[href], summary, input[type=checkbox], input[type=radio], select";

function typing(target) {
  return TYPING.has(target.tagName) || (target.tagName === "INPUT" && TEXT_INPUTS.has(target.type));
}

function action(event) {
  const { code, key, altKey, shiftKey } = event;
  if (event.ctrlKey || event.metaKey) return null;
  const letter = /^Key([A-Z])$/.exec(code)?.[1];
  if (shiftKey && letter === "B") return ["flag", "broken_audio"];
  if (shiftKey && letter === "U") return ["flag", "unsafe"];
  if (key === "?") return ["help"];
  if (key === "+") return ["nudge", 1];
  if (altKey && key === "ArrowUp") return ["rankUp"];
  if (altKey && key === "ArrowDown") return ["rankDown"];
  if (altKey || shiftKey) return null;
  if (letter && "ABCDEF".includes(letter)) return ["card", "ABCDEF".indexOf(letter)];
  const digit = /^(?:Digit|Numpad)([0-9])$/.exec(code)?.[1];
  if (digit !== undefined) return ["score", Number(digit)];
  switch (key) {
    case " ": return ["play"];
    case "ArrowLeft": return ["seek", -2];
    case "ArrowRight": return ["seek", 2];
    case "ArrowUp": return ["criterion", -1];
    case "ArrowDown": return ["criterion", 1];
    case "[": return ["speed", -1];
    case "]": return ["speed", 1];
    case "=": return ["nudge", 1];
    case "-": return ["nudge", -1];
    case "Enter": return ["submit"];
    default: break;
  }
  switch (letter) {
    case "L": return ["loop"];
    case "T": return ["tie"];
    case "N": return ["none"];
    case "R": return ["rationale"];
    case "S": return ["skip"];
    case "Q": return ["context"];
    default: return null;
  }
}

export function bindKeys(handlers, { enabled }) {
  document.addEventListener("keydown", (event) => {
    if (!enabled(event) || event.defaultPrevented || event.isComposing) return;
    const target = event.target;
    if (typing(target)) {
      if (event.key === "Escape") target.blur();
      else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        handlers.submit();
      }
      return;
    }
    if ((event.key === "Enter" || event.key === " ") && target.closest?.(ACTIVATABLE)) return;
    const found = action(event);
    if (!found) return;
    const [name, arg] = found;
    event.preventDefault();
    handlers[name](arg);
  });
  // A mouse click leaves the focus on its button; give it back to the page so that Enter
  // submits and Space plays instead of clicking that button again.
  document.addEventListener("click", (event) => {
    const button = event.target.closest?.("button");
    if (button && event.detail > 0) button.blur();
  });
}
