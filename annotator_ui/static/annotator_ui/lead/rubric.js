// Rubric editor: "Add criterion" appends a blank criterion form to the Django formset.
const add = document.getElementById("add-criterion");
add?.addEventListener("click", () => {
  const total = document.getElementById("id_criteria-TOTAL_FORMS");
  const index = Number(total.value);
  const template = document.getElementById("criterion-template").innerHTML.replaceAll("__prefix__", String(index));
  document.getElementById("criteria").insertAdjacentHTML("beforeend", template);
  total.value = String(index + 1);
});
