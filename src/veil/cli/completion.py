"""`veil completion bash|zsh|fish`: print the shell's completion script (click's own machinery).

    eval "$(veil completion bash)"        # in ~/.bashrc
    eval "$(veil completion zsh)"         # in ~/.zshrc
    veil completion fish > ~/.config/fish/completions/veil.fish
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL: add `eval "$(veil completion bash)"` to ~/.bashrc
    (zsh: the same with zsh; fish: save it in ~/.config/fish/completions/veil.fish)."""
    from .main import cli

    cls = get_completion_class(shell)
    assert cls is not None  # every choice above is one click ships
    click.echo(cls(cli, {}, "veil", "_VEIL_COMPLETE").source())


commands = [completion]
