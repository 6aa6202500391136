document.getElementById("status").textContent = "{{name}} is running.";
