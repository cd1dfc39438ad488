from services.engagement.bootstrap import MIGRATIONS, Settings, build
from shared.runner import main

main(Settings, build, MIGRATIONS)
