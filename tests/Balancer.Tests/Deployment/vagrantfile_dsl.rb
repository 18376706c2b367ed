# Loads a Vagrantfile against a recording stand-in for Vagrant's configuration DSL and prints, as JSON,
# the machines it defines: hostname, networks, provider memory and CPUs, provisioners, and the triggers.
# Usage: ruby vagrantfile_dsl.rb PATH/TO/Vagrantfile
require "json"

# Accepts any call it has no recorder for (synced folders, ssh settings, ...), blocks included.
class Anything
  def method_missing(_name, *_args, **_kwargs, &block)
    block&.call(Anything.new)
    self
  end

  def respond_to_missing?(*) = true
end

class ProviderSettings < Anything
  attr_accessor :memory, :cpus, :name
end

class TriggerSettings < Anything
  attr_accessor :info, :run, :run_remote, :name
end

class Triggers
  attr_reader :recorded

  def initialize = @recorded = []

  def before(*commands, **_options, &block) = record("before", commands, block)

  def after(*commands, **_options, &block) = record("after", commands, block)

  private

  def record(at, commands, block)
    settings = TriggerSettings.new
    block&.call(settings)
    @recorded << { at: at, commands: commands.flatten.map(&:to_s), run: settings.run }
  end
end

class VmSettings < Anything
  attr_accessor :box, :box_check_update, :hostname, :box_version
  attr_reader :networks, :provisions, :providers, :machines

  def initialize
    @networks = []
    @provisions = []
    @providers = {}
    @machines = {}
  end

  def network(type, **options) = @networks << { type: type }.merge(options)

  def provision(name, **options) = @provisions << { name: name }.merge(options)

  def provider(name, &block)
    settings = ProviderSettings.new
    block&.call(settings, Anything.new)
    @providers[name] = { memory: settings.memory, cpus: settings.cpus, name: settings.name }
  end

  def define(name, **_options, &block)
    machine = MachineConfig.new
    block&.call(machine)
    @machines[name] = machine
  end
end

class MachineConfig < Anything
  attr_reader :vm, :trigger

  def initialize
    @vm = VmSettings.new
    @trigger = Triggers.new
  end
end

module Vagrant
  def self.configure(version)
    raise ArgumentError, "Vagrant.configure(\"2\") expected, got #{version.inspect}" unless version.to_s == "2"

    $root_config = MachineConfig.new
    yield $root_config
  end
end

load File.expand_path(ARGV.fetch(0))
root = $root_config or abort("the Vagrantfile never called Vagrant.configure")
machines = root.vm.machines.transform_values do |m|
  { hostname: m.vm.hostname, networks: m.vm.networks, providers: m.vm.providers, provisions: m.vm.provisions }
end
puts JSON.generate({ box: root.vm.box, triggers: root.trigger.recorded, machines: machines })
