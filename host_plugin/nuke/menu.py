# Run by Nuke in GUI sessions after init.py: adds Nodes > vqedit > VQFaceEdit.
import vqedit_nuke

vqedit_nuke.register()
