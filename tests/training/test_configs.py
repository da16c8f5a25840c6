"""Training configs: the paper's defaults, the YAML files (ours and the accelerate ones), overrides and bad input."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
import yaml

import training.configs
from training.configs import (
    REWARD_FIELDS,
    ConfigError,
    ShopR1GRPOConfig,
    ShopR1SFTConfig,
    load_config,
    parse_overrides,
)
from training.rewards import RewardConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"


def test_doctests():
    result = doctest.testmod(training.configs)
    assert result.failed == 0 and result.attempted > 0


class TestDefaults:
    def test_grpo_defaults_are_the_papers(self, tmp_path):
        config = ShopR1GRPOConfig(output_dir=str(tmp_path))
        assert (config.learning_rate, config.beta, config.temperature, config.max_steps) == (1e-7, 0.001, 0.6, 500)
        assert (config.dars, config.rouge_threshold, config.self_certainty_alpha) == (1000.0, 0.75, 0.005)
        reward = config.reward_config()
        assert reward.dars_factor == 1000.0 and not reward.binary and reward.use_format
        assert (config.rouge_gate, config.format_check) == ("exceeds", "strict")
        assert reward == RewardConfig()

    def test_sft_defaults_are_the_papers(self, tmp_path):
        config = ShopR1SFTConfig(output_dir=str(tmp_path))
        assert (config.learning_rate, config.num_train_epochs, config.assistant_only_loss) == (2e-5, 4.0, True)

    def test_every_added_field_has_help(self):
        import dataclasses

        from trl import GRPOConfig, SFTConfig

        for cls, base in ((ShopR1GRPOConfig, GRPOConfig), (ShopR1SFTConfig, SFTConfig)):
            base_names = {f.name for f in dataclasses.fields(base)}
            for f in dataclasses.fields(cls):
                if f.name not in base_names:
                    assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"

    def test_binary_and_context(self, tmp_path):
        config = ShopR1GRPOConfig(output_dir=str(tmp_path), reward="binary", context="latest")
        assert config.reward_config().binary and config.prompt_column == "prompt_latest"
        assert config.reward_config().use_format  # Table 4's binary action reward keeps the format reward
        baseline = ShopR1GRPOConfig(output_dir=str(tmp_path), reward="binary", use_format=False)
        assert baseline.reward_config() == RewardConfig(binary=True, use_format=False)  # Table 2's RL (binary)


class TestRewardFields:
    """The reward's fields are declared once, in `RewardConfig`; the GRPO config carries them under the same names."""

    def test_every_reward_field_but_binary_with_its_default_and_help(self):
        import dataclasses

        grpo = {f.name: f for f in dataclasses.fields(ShopR1GRPOConfig)}
        for f in dataclasses.fields(RewardConfig):
            if f.name == "binary":
                assert "binary" not in grpo  # the `reward` field says it
                continue
            assert grpo[f.name].default == f.default, f.name
            assert grpo[f.name].metadata["help"] == f.metadata["help"], f.name
        assert set(REWARD_FIELDS) == {f.name for f in dataclasses.fields(RewardConfig)} - {"binary"}

    @pytest.mark.parametrize("changes", [
        {"rouge_gate": "at_least"},
        {"format_check": "lenient"},
        {"use_format": False},
        {"use_dars": False},
        {"dars": 10.0, "rouge_threshold": 0.5},
        {"type_reward": 0.4, "format_reward": 1.0},
    ])
    def test_each_switch_reaches_the_reward(self, tmp_path, changes):
        config = ShopR1GRPOConfig(output_dir=str(tmp_path), **changes)
        assert config.reward_config() == RewardConfig(**changes)

    def test_switches_from_yaml_overrides(self):
        rl = load_config(CONFIGS / "tiny-cpu.yaml", "rl", ["rouge_gate=at_least", "format_check=lenient"])
        assert (rl.reward_config().rouge_gate, rl.reward_config().format_check) == ("at_least", "lenient")
        with pytest.raises(ConfigError, match="Expect rouge_gate one of 'exceeds', 'at_least', actually: 'gt'"):
            load_config(CONFIGS / "tiny-cpu.yaml", "rl", ["rouge_gate=gt"])


class TestBadCombinations:
    @pytest.mark.parametrize(("kwargs", "fragment"), [
        ({"context": "session"}, "Expect context 'all' or 'latest'"),
        ({"reward": "exact"}, "Expect reward 'shop_r1' or 'binary'"),
        ({"self_certainty_alpha": -0.1}, "Expect self_certainty_alpha >= 0"),
        ({"reward_weights": [1.0, 0.5]}, "Expect reward_weights unset"),
        ({"outcome_bonus": 1.0}, "Expect online=True with outcome_bonus > 0"),
        ({"online": True, "use_vllm": True}, "Expect use_vllm=False with online=True"),
        ({"online_backend": "selenium"}, "Expect online_backend 'http' or 'browser'"),
        ({"rouge_threshold": 1.5}, "Expect rouge_threshold in [0, 1]"),
        ({"dars": 0.0}, "Expect dars > 0"),
        ({"online_site": "localhost:8000"}, "Expect online_site as an http(s) URL"),
        ({"reward": "binary", "use_dars": False}, "Expect use_dars left on with reward='binary'"),
        ({"format_check": "fenced"}, "Expect format_check one of 'strict', 'lenient'"),
        ({"rouge_threshold": 1.0}, "Expect rouge_threshold < 1 with rouge_gate='exceeds'"),
        ({"max_prompt_length": 0}, "Expect max_prompt_length >= 1"),
    ])
    def test_rejected_with_expect_actually(self, tmp_path, kwargs, fragment):
        with pytest.raises(ValueError, match="actually") as info:
            ShopR1GRPOConfig(output_dir=str(tmp_path), **kwargs)
        assert fragment in str(info.value)


class TestYaml:
    @pytest.mark.parametrize("name", ["tiny-cpu.yaml", "paper-3b.yaml"])
    @pytest.mark.parametrize("stage", ["sft", "rl"])
    def test_our_configs_parse(self, name, stage):
        config = load_config(CONFIGS / name, stage)
        assert isinstance(config, ShopR1SFTConfig if stage == "sft" else ShopR1GRPOConfig)
        assert config.data_dir and config.model_dir and config.output_dir

    def test_paper_config_has_the_papers_numbers(self):
        rl = load_config(CONFIGS / "paper-3b.yaml", "rl")
        assert (rl.learning_rate, rl.beta, rl.temperature, rl.max_steps) == (1e-7, 0.001, 0.6, 500)
        assert (rl.dars, rl.rouge_threshold, rl.self_certainty_alpha) == (1000.0, 0.75, 0.005)
        accelerate = yaml.safe_load((CONFIGS / "accelerate" / "ddp.yaml").read_text())
        global_batch = rl.per_device_train_batch_size * rl.gradient_accumulation_steps * accelerate["num_processes"]
        assert global_batch == 64
        assert rl.use_vllm and rl.vllm_mode in ("colocate", "server")
        assert rl.context == "all" and rl.reward == "shop_r1"
        sft = load_config(CONFIGS / "paper-3b.yaml", "sft")
        assert (sft.learning_rate, sft.num_train_epochs, sft.assistant_only_loss) == (2e-5, 4, True)
        assert "Qwen2.5-3B-Instruct" in sft.model_dir
        assert sft.per_device_train_batch_size * sft.gradient_accumulation_steps * accelerate["num_processes"] == 64

    def test_tiny_config_is_small(self):
        rl = load_config(CONFIGS / "tiny-cpu.yaml", "rl")
        assert rl.num_generations == 4 and rl.max_completion_length <= 128 and rl.use_cpu and rl.max_steps <= 10
        assert rl.per_device_train_batch_size % rl.num_generations == 0

    @pytest.mark.parametrize("name", ["ddp", "fsdp", "zero3"])
    def test_accelerate_configs_parse(self, name):
        from accelerate.commands.config.config_args import ClusterConfig

        path = CONFIGS / "accelerate" / f"{name}.yaml"
        config = ClusterConfig.from_yaml_file(str(path))
        expected = {"ddp": "MULTI_GPU", "fsdp": "FSDP", "zero3": "DEEPSPEED"}[name]
        assert str(config.distributed_type).endswith(expected)
        assert config.mixed_precision == "bf16" and config.num_processes >= 1
        assert path.read_text().lstrip().startswith("#"), "each accelerate config documents itself"


class TestOverrides:
    def test_parse(self):
        assert parse_overrides(["a=1", "b=x y", "c=[1, 2]", "d="]) == {"a": 1, "b": "x y", "c": [1, 2], "d": None}
        with pytest.raises(ConfigError, match="key=value"):
            parse_overrides(["novalue"])

    def test_types_are_coerced_and_stages_scoped(self):
        config = load_config(CONFIGS / "tiny-cpu.yaml", "rl",
                             ["learning_rate=1e-7", "rl.max_steps=2", "sft.max_steps=99", "online=yes",
                              "self_certainty_alpha=0"])
        assert config.learning_rate == 1e-7 and isinstance(config.learning_rate, float)
        assert config.max_steps == 2 and config.online is True and config.self_certainty_alpha == 0
        sft = load_config(CONFIGS / "tiny-cpu.yaml", "sft", ["sft.max_steps=7", "rl.max_steps=2"])
        assert sft.max_steps == 7

    def test_unknown_key_suggests(self):
        with pytest.raises(ConfigError, match=r"unknown: 'learnig_rate' \(did you mean 'learning_rate'\?\)"):
            load_config(CONFIGS / "tiny-cpu.yaml", "rl", ["learnig_rate=1"])

    def test_bad_value_type(self):
        with pytest.raises(ConfigError, match="Expect max_steps of ShopR1GRPOConfig to be int"):
            load_config(CONFIGS / "tiny-cpu.yaml", "rl", ["max_steps=many"])

    def test_bad_files(self, tmp_path):
        with pytest.raises(ConfigError, match="does not exist"):
            load_config(tmp_path / "none.yaml", "rl")
        (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
        with pytest.raises(ConfigError, match="Expect a mapping"):
            load_config(tmp_path / "list.yaml", "rl")
        (tmp_path / "nosft.yaml").write_text("rl: {max_steps: 1}\n")
        with pytest.raises(ConfigError, match="Expect a `sft:` section"):
            load_config(tmp_path / "nosft.yaml", "sft")
        with pytest.raises(ConfigError, match="Expect kind 'sft' or 'rl'"):
            load_config(tmp_path / "nosft.yaml", "dpo")

    def test_flat_file(self, tmp_path):
        (tmp_path / "flat.yaml").write_text(f"output_dir: {tmp_path}\nmax_steps: 3\nuse_cpu: true\n")
        assert load_config(tmp_path / "flat.yaml", "rl").max_steps == 3


class TestCli:
    def test_bad_config_exits_2(self, tmp_path):
        import typer
        from typer.testing import CliRunner

        from training.cli.train import register_train

        app = typer.Typer()
        register_train(app)

        @app.callback()
        def _root() -> None:
            pass

        runner = CliRunner()
        result = runner.invoke(app, ["train", "rl", "--config", str(CONFIGS / "tiny-cpu.yaml"), "--set", "foo=1"])
        assert result.exit_code == 2
        assert "unknown: 'foo'" in result.output
        result = runner.invoke(app, ["train", "sft", "--config", str(tmp_path / "missing.yaml")])
        assert result.exit_code == 2
        result = runner.invoke(app, ["train", "rl", "--config", str(CONFIGS / "tiny-cpu.yaml"), "--online",
                                     "--set", "use_vllm=true"])
        assert result.exit_code == 2 and "use_vllm=False with online=True" in result.output
        result = runner.invoke(app, ["train", "sft", "--config", str(CONFIGS / "tiny-cpu.yaml"),
                                     "--set", f"sft.model_dir={tmp_path / 'nomodel'}",
                                     "--set", f"data_dir={tmp_path / 'nodata'}"])
        assert result.exit_code == 2 and "Expect" in result.output
