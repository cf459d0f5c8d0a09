"""Each module's README.md carries its inputs and outputs as module_docs.py writes them, and
module_docs.py reads the HCL it meets correctly. (That it agrees with Terraform's own view of
the modules is checked in test_examples.py, which plans them.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.terraform import module_docs
from tests.terraform.harness import REPO


@pytest.mark.parametrize("module", module_docs.MODULES)
def test_each_module_readme_is_up_to_date(module):
    directory = REPO / module
    readme = (directory / "README.md").read_text()
    assert module_docs.rendered(readme, directory) == readme, (
        f"{module}/README.md is out of date: run `python -m {module_docs.__name__}`"
    )


def test_the_check_names_a_stale_readme_and_the_command(tmp_path, capsys, monkeypatch):
    module = tmp_path / "modules" / "example"
    module.mkdir(parents=True)
    (module / "variables.tf").write_text('variable "a" {\n  type = string\n}\n')
    (module / "README.md").write_text(f"# example\n\n{module_docs.BEGIN}\n{module_docs.END}\n")
    monkeypatch.setattr(module_docs, "REPO", tmp_path)
    assert module_docs.main(["--check", str(module)]) == 1
    assert (
        "modules/example/README.md is out of date: run python -m tests.terraform.module_docs"
        in (capsys.readouterr().err)
    )
    assert module_docs.main([str(module)]) == 0
    assert module_docs.main(["--check", str(module)]) == 0
    text = (module / "README.md").read_text()
    assert text.startswith("# example\n\n")  # what surrounds the markers is kept
    assert '| <a name="input_a"></a> [a](#input\\_a) |  | `string` | n/a | yes |' in text


HCL = r"""
# A comment with a brace { and a "quote"
variable "tables" {
  description = "Tables, e.g. { \"user-cn\" = { hash_key = \"PK\" } }: a | pipe, <b> and $${x}."
  type = map(object({
    hash_key = string # a comment inside the type
    indexes  = optional(map(string), {})
  }))
  default  = {}
  nullable = false
  validation {
    condition     = alltrue([for t in values(var.tables) : t.hash_key != "}"])
    error_message = "Not a closing brace: ${"}"}."
  }
}

/* a block comment with variable "hidden" { } */
variable "note" {
  description = <<-EOT
    A heredoc description,
    over two lines.
  EOT
  type        = string
  sensitive   = true
}

variable "untyped" {}

output "names" {
  description = "Table names."
  value       = { for k, v in var.tables : k => v if k != "{" }
  sensitive   = true
}
"""


def test_the_reader_keeps_types_as_written_and_decodes_descriptions(tmp_path: Path):
    (tmp_path / "main.tf").write_text(HCL)
    tables, note, untyped = module_docs.variables(tmp_path)
    assert tables.name == "tables"
    assert tables.description == (
        'Tables, e.g. { "user-cn" = { hash_key = "PK" } }: a | pipe, <b> and ${x}.'
    )
    assert tables.type == (
        "map(object({\n"
        "  hash_key = string # a comment inside the type\n"
        "  indexes  = optional(map(string), {})\n"
        "}))"
    )
    assert (tables.default, tables.nullable, tables.required) == ("{}", False, False)
    assert note.description == "A heredoc description,\nover two lines.\n"
    assert (note.sensitive, note.required) == (True, True)
    assert (untyped.type, untyped.description) == (None, None)
    [names] = module_docs.outputs(tmp_path)
    assert (names.name, names.description, names.sensitive) == ("names", "Table names.", True)


def test_table_cells_escape_what_markdown_would_swallow(tmp_path: Path):
    (tmp_path / "main.tf").write_text(HCL)
    table = module_docs.tables(tmp_path)
    [row] = [line for line in table.splitlines() if "input_tables" in line]
    assert "a \\| pipe, &lt;b&gt;" in row
    assert "<pre>map(object({<br/>  hash_key = string" in row
    assert "(sensitive)" in table


def test_a_broken_file_is_named_with_its_line(tmp_path: Path):
    (tmp_path / "main.tf").write_text('variable "a" {\n  type = list(string\n}\n')
    with pytest.raises(
        module_docs.HclError, match="main.tf:2: unclosed bracket|main.tf:.*mismatched"
    ):
        module_docs.variables(tmp_path)
